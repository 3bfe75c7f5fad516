"""Hardware attestations, health rules, uptime accounting and the valuation model."""
