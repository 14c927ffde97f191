"""Cost: spot prices and the capacity choice, the cost ledger, cost reports."""
