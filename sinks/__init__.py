"""The Salesforce sink: `salesforce.upserts` → sObject Collections / Bulk API 2.0 upserts by external id (`paysync sink`)."""
