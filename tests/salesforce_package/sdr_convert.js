// Convert an SFDX project to Metadata API format with Salesforce's own @salesforce/source-deploy-retrieve
// (the library behind `sf project deploy start` / `sf project convert source`).
//
// Usage: node sdr_convert.js <project dir> <output dir> [package dir ...]
//   package dirs default to every packageDirectories entry of <project dir>/sfdx-project.json.
// Prints one JSON line: {"components": [{"type", "fullName", "path"}], "packageXml": <text>, "outputDir"}.
// Exits 1 with the error on stderr on any failure: an unparsable file, an unknown metadata type, a file SDR
// cannot resolve to a component (ComponentSet.fromSource throws TypeInferenceError), or a conversion error.
'use strict';

const fs = require('fs');
const path = require('path');
const { ComponentSet, MetadataConverter, MetadataResolver } = require('@salesforce/source-deploy-retrieve');

function packageDirs(projectDir, requested) {
  if (requested.length > 0) return requested.map((d) => path.resolve(projectDir, d));
  const project = JSON.parse(fs.readFileSync(path.join(projectDir, 'sfdx-project.json'), 'utf8'));
  return project.packageDirectories.map((d) => path.resolve(projectDir, d.path));
}

function unresolvedFiles(dirs) {
  // Every file under a package dir must belong to a component (or be listed in .forceignore).
  const resolver = new MetadataResolver();
  const claimed = new Set();
  for (const dir of dirs) {
    for (const component of resolver.getComponentsFromPath(dir)) {
      // A decomposed type (CustomObject) names its folder as content: only its own and its children's XML count,
      // so a stray file inside an object folder is reported rather than silently skipped.
      const decomposed = Boolean(component.type.children);
      const files = decomposed ? [component.xml] : [component.xml, ...component.walkContent()];
      for (const file of files.filter(Boolean)) claimed.add(file);
      for (const child of component.getChildren()) if (child.xml) claimed.add(child.xml);
    }
  }
  const out = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (!claimed.has(full) && !entry.name.endsWith('.md')) out.push(full);
    }
  };
  dirs.forEach(walk);
  return out;
}

async function main() {
  const [projectDir, outputDir, ...requested] = process.argv.slice(2);
  if (!projectDir || !outputDir) throw new Error('usage: node sdr_convert.js <project dir> <output dir> [dirs]');
  process.chdir(projectDir); // SDR reads .forceignore and sfdx-project.json relative to the project
  const dirs = packageDirs(projectDir, requested);
  const set = ComponentSet.fromSource(dirs);
  const components = set.getSourceComponents().toArray();
  if (components.length === 0) throw new Error(`no components found in ${dirs.join(', ')}`);
  const orphans = unresolvedFiles(dirs);
  if (orphans.length > 0) throw new Error(`files no component claims: ${orphans.join(', ')}`);
  const result = await new MetadataConverter().convert(set, 'metadata', {
    type: 'directory', outputDirectory: outputDir, packageName: 'paysync', genUniqueDir: false,
  });
  const converted = result.packagePath || outputDir;
  const listed = [];
  for (const c of set.getSourceComponents().toArray()) {
    listed.push({ type: c.type.name, fullName: c.fullName, path: c.xml || c.content });
    for (const child of c.getChildren()) listed.push({ type: child.type.name, fullName: child.fullName, path: child.xml });
  }
  const packageXml = fs.readFileSync(path.join(converted, 'package.xml'), 'utf8');
  process.stdout.write(JSON.stringify({ components: listed, packageXml, outputDir: converted }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err && err.name ? err.name + ': ' : ''}${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
