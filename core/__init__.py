"""paysync's pure core: what a Stripe object becomes in Salesforce, and in which order.

The registry of Stripe types (`core.registry`, one `core.types` module per type), the mappings
(`core.mapping`), the status tables and order guard (`core.statuses`, `core.order`), the payout
reconciliation rule (`core.payout_reconciliation`) and the mapping settings (`core.config`). It imports only
the shared package `paysync` (an import-linter contract): no Kafka, Faust or HTTP, so the stream worker,
`paysync reconcile`, the demo and the chaos invariants all run the same code.
"""
