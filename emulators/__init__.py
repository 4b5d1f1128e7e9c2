"""Faithful stand-ins for the services paysync talks to but cannot reach from here.

`salesforce_emulator`: Salesforce's REST, Bulk 2.0 and auth APIs over HTTPS, schema from our SFDX metadata.
`stripe_simulator`: a stateful Stripe account that delivers signed webhooks and answers the read API.
They import no pipeline stage; the real client libraries talk to them unmodified.
"""
