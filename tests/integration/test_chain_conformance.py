"""One suite, two chains: the in-memory chain used by the unit tests behaves like anvil
behind Web3ChainClient on everything the transmitter relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from eth_account import Account

from aggregation.report import ReportKind
from contracts.encoding import transmit_signature
from oracle.chain import (
    CallRequest,
    ChainClient,
    ExecutionReverted,
    TxHash,
    TxRejected,
    TxRejection,
    Web3ChainClient,
    address,
)
from oracle.chain.memory import MemoryChain
from oracle.chain.receivers import encode_transmit, latest_epoch_and_round
from tests.integration.test_chain_fixtures import ChainNet, chain_net

pytestmark = pytest.mark.integration

__all__ = ["chain_net"]


@pytest.fixture(params=["memory", "anvil"])
async def chain(request: pytest.FixtureRequest, chain_net: ChainNet) -> AsyncIterator[ChainClient]:
    if request.param == "memory":
        memory = MemoryChain(
            chain_net.deployment.chain_id,
            group_key=chain_net.dealt.committee.group_key,
            default_balance=0,
        )
        memory.add_receiver(chain_net.store_address, int(ReportKind.PRICES))
        yield memory
    else:
        async with Web3ChainClient([chain_net.anvil.url]) as client:
            yield client


def _signed_tx(net: ChainNet, account: object, nonce: int, data: bytes, max_fee: int) -> bytes:
    tx = {
        "type": 2,
        "chainId": net.deployment.chain_id,
        "nonce": nonce,
        "to": net.store_address,
        "value": 0,
        "gas": 200_000,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": min(max_fee, 10**9),
        "data": data,
    }
    return bytes(account.sign_transaction(tx).raw_transaction)  # type: ignore[attr-defined]


async def test_transmit_lifecycle(chain: ChainClient, chain_net: ChainNet) -> None:
    net = chain_net
    account = net.funded_account()
    sender = address(account.address)
    if isinstance(chain, MemoryChain):
        chain.balances[sender] = 10**20
    receiver = address(net.store_address)
    assert await chain.chain_id() == net.deployment.chain_id
    assert await latest_epoch_and_round(chain, receiver, sender) == (0, 0)
    assert await chain.nonce(sender, "pending") == 0

    request = net.request(1, 1)
    data = encode_transmit(request.report, transmit_signature(request.signature, net.group_key_x))
    call = CallRequest(sender, receiver, data)
    await chain.call(call)  # simulation passes
    assert 30_000 < await chain.estimate_gas(call) < 200_000
    fees = await chain.fee_snapshot()
    assert fees.next_base_fee > 0
    max_fee = fees.next_base_fee * 2 + 10**9

    # Below the base fee: refused as underpriced, nonce untouched.
    with pytest.raises(TxRejected) as cheap:
        await chain.send_raw_transaction(_signed_tx(net, account, 0, data, 1))
    assert cheap.value.reason is TxRejection.UNDERPRICED

    raw = _signed_tx(net, account, 0, data, max_fee)
    tx_hash = await chain.send_raw_transaction(raw)
    receipt = await chain.receipt(tx_hash)
    assert receipt is not None and receipt.status == 1 and receipt.tx_hash == tx_hash
    assert receipt.gas_used > 21_000 and receipt.effective_gas_price > 0
    assert await chain.nonce(sender, "latest") == 1
    assert await latest_epoch_and_round(chain, receiver, sender) == (1, 1)

    # The same report again: simulation names the contract's error.
    with pytest.raises(ExecutionReverted) as caught:
        await chain.call(call)
    assert caught.value.error == "NotIncreasing(1, 1, 1, 1)"
    with pytest.raises(ExecutionReverted):
        await chain.estimate_gas(call)
    # The same signed transaction again: its nonce is used.
    with pytest.raises(TxRejected) as rejected:
        await chain.send_raw_transaction(raw)
    assert rejected.value.reason is TxRejection.NONCE_TOO_LOW
    assert await chain.receipt(TxHash(b"\x99" * 32)) is None

    poor = Account.create()
    with pytest.raises(TxRejected) as broke:
        await chain.send_raw_transaction(_signed_tx(net, poor, 0, data, max_fee))
    assert broke.value.reason is TxRejection.INSUFFICIENT_FUNDS
