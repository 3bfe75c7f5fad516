"""Prometheus metrics of one node.

Every metric lives on the :class:`~prometheus_client.CollectorRegistry` passed in, never on
the global default registry: tests and ``xon devnet`` run many nodes in one process, and
each node gets its own registry (exposed by its own HTTP endpoint). Names carry the
``xon_`` namespace; counters end in ``_total``. Label values are always from a small,
fixed set (reasons, message types, committee members, providers) — never free text.

Helpers that own a subsystem add its metrics here, next to the others, so the whole set
an operator can alert on is in one file.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ROUND_LATENCY_BUCKETS", "NodeMetrics"]

# A round normally takes a few hundred milliseconds; ΔProgress bounds it at tens of seconds.
ROUND_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class NodeMetrics:
    """The metric objects of one node, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # A fresh private registry by default, so a forgotten argument can never collide
        # with another node's metrics or the process-wide default registry.
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry

        # transport
        self.messages_received = Counter(
            "xon_messages_received_total",
            "Verified messages delivered to the node, by envelope type.",
            ["type"],
            registry=r,
        )
        self.messages_dropped = Counter(
            "xon_messages_dropped_total",
            "Messages dropped, by reason (see oracle.transport.envelope.DropReason).",
            ["reason"],
            registry=r,
        )
        self.messages_published = Counter(
            "xon_messages_published_total",
            "Messages handed to the transport for publication, by envelope type.",
            ["type"],
            registry=r,
        )
        self.transport_reconnects = Counter(
            "xon_transport_reconnects_total",
            "Successful reconnections to the broker after a lost connection.",
            registry=r,
        )
        self.resyncs = Counter(
            "xon_resyncs_total",
            "Times the node re-announced its state after the transport came back.",
            registry=r,
        )
        self.transport_connected = Gauge(
            "xon_transport_connected",
            "1 while connected and subscribed, else 0.",
            registry=r,
        )

        # consensus (oracle/protocol)
        self.rounds_started = Counter(
            "xon_rounds_started_total", "Consensus rounds started.", registry=r
        )
        self.rounds_finalized = Counter(
            "xon_rounds_finalized_total",
            "Consensus rounds that produced a FINAL report.",
            registry=r,
        )
        self.epoch_changes = Counter(
            "xon_epoch_changes_total", "Pacemaker epoch changes.", registry=r
        )
        self.shares_rejected = Counter(
            "xon_shares_rejected_total",
            "FROST signature shares that failed verification, by committee member.",
            ["member"],
            registry=r,
        )
        self.round_latency = Histogram(
            "xon_round_latency_seconds",
            "Time from OBSERVE to FINAL.",
            buckets=ROUND_LATENCY_BUCKETS,
            registry=r,
        )
        self.tx_confirmation = Histogram(
            "xon_tx_confirmation_seconds",
            "Time from broadcasting a transaction (this attempt) to seeing its receipt.",
            buckets=(0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600),
            registry=r,
        )

        # node driver (oracle/node.py)
        self.misbehaviour = Counter(
            "xon_misbehaviour_total",
            "Provable faults of committee members, by member and kind (MisbehaviourKind).",
            ["member", "kind"],
            registry=r,
        )
        self.sign_refusals = Counter(
            "xon_sign_refusals_total",
            "Signatures not released because the store refused the sign-protection record, "
            "by reason (double_sign, commitment_unavailable, store_error).",
            ["reason"],
            registry=r,
        )
        self.observation_failures = Counter(
            "xon_observation_failures_total",
            "Feed refreshes that produced no usable observation, by reason.",
            ["reason"],
            registry=r,
        )
        self.node_errors = Counter(
            "xon_node_errors_total",
            "Errors the node logged and survived (a bug or a local fault), by where.",
            ["where"],
            registry=r,
        )
        self.member_deviation = Gauge(
            "xon_member_deviation",
            "Credibility: mean EWMA relative deviation of a member's observations from the "
            "agreed medians (0.1 = 10 %).",
            ["member"],
            registry=r,
        )

        # feeds
        self.source_failures = Counter(
            "xon_source_failures_total",
            "Price-source fetches that failed, by provider.",
            ["provider"],
            registry=r,
        )

        # chain
        self.tx_sent = Counter("xon_tx_sent_total", "Transactions sent.", registry=r)
        self.tx_failed = Counter(
            "xon_tx_failed_total", "Transactions that failed or reverted.", registry=r
        )
        self.tx_gas_used = Counter(
            "xon_tx_gas_used_total", "Gas used by mined transactions.", registry=r
        )
        # chain: transmitter and relayer (oracle/chain, oracle/relay.py)
        self.tx_fees_gwei = Counter(
            "xon_tx_fees_gwei_total",
            "Fees paid by mined transactions (gas used x effective gas price), in gwei.",
            registry=r,
        )
        self.tx_bumped = Counter(
            "xon_tx_bumped_total",
            "Same-nonce replacements of stuck transactions (fee bumps and cancellations).",
            registry=r,
        )
        self.tx_skipped = Counter(
            "xon_tx_skipped_total",
            "Reports not sent, by reason (onchain, superseded, rejected, fee_cap, retry).",
            ["reason"],
            registry=r,
        )
        self.transmissions = Counter(
            "xon_transmissions_total",
            "Reports settled by the transmitter, by outcome (oracle.chain.Outcome).",
            ["outcome"],
            registry=r,
        )
        self.rpc_failures = Counter(
            "xon_rpc_failures_total",
            "Transport failures of an RPC endpoint (index in the configured list).",
            ["endpoint"],
            registry=r,
        )
        self.rpc_endpoint_up = Gauge(
            "xon_rpc_endpoint_up",
            "1 while an RPC endpoint (index in the configured list) is considered up, else 0.",
            ["endpoint"],
            registry=r,
        )
        self.relay_finals = Counter(
            "xon_relay_finals_total",
            "FINAL messages seen by a relayer, by result (accepted, bad_signature, "
            "malformed, unknown_kind, duplicate).",
            ["result"],
            registry=r,
        )

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of one sample (0.0 when never touched): for tests and status."""
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value
