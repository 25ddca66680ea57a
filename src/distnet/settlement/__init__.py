"""Settlement: pending commissions become available (or withheld) once their hold days passed."""
