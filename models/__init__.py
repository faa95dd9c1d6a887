"""Recommenders behind one interface: fit → Factors (vectors + biases) → score, save, load."""
