"""Pollers of Stripe's list endpoints: events (missed webhooks) and balance transactions/payouts."""
