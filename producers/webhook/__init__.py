"""The Stripe webhook receiver: verify the signature, publish the envelope, answer after the broker's ack."""
