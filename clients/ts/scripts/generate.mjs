// Generates src/generated from the committed IDL (idl/escrow.json) with Codama.
// `node scripts/generate.mjs <dir>` writes into <dir>/src/generated instead (the staleness check).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { rootNodeFromAnchor } from '@codama/nodes-from-anchor';
import { renderVisitor } from '@codama/renderers-js';
import { visit } from '@codama/visitors-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const idl = JSON.parse(readFileSync(path.join(here, '../../../idl/escrow.json'), 'utf8'));
const packageDir = process.argv[2] ?? path.join(here, '..');
await visit(rootNodeFromAnchor(idl), renderVisitor(packageDir, { syncPackageJson: false }));
console.log(`generated ${path.join(packageDir, 'src/generated')}`);
