"""perkrank: personalized offers for loyalty programs."""
