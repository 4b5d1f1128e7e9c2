// Second, independent client: jsforce 3 logs in (SOAP) and runs a Bulk 2.0 upsert against the emulator.
// argv: loginUrl username password csvPath ; prints one JSON line with the job's results.
const fs = require('fs');
const jsforce = require('jsforce');

async function main() {
  const [loginUrl, username, password, csvPath, object, extId] = process.argv.slice(2);
  const conn = new jsforce.Connection({ loginUrl, version: '59.0' });
  await conn.login(username, password);
  const results = await conn.bulk2.loadAndWaitForResults({
    object, operation: 'upsert', externalIdFieldName: extId,
    input: fs.readFileSync(csvPath, 'utf8'), pollInterval: 100, pollTimeout: 60000,
  });
  const count = await conn.query(`SELECT COUNT() FROM ${object}`);
  process.stdout.write(JSON.stringify({
    instanceUrl: conn.instanceUrl,
    successful: results.successfulResults.length,
    failed: results.failedResults.map((r) => r.sf__Error),
    unprocessed: results.unprocessedRecords.length,
    total: count.totalSize,
  }) + '\n');
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); });
