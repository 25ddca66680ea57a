"""Finance reports: commission statements, payout run reports, trial balance, debt ageing."""
