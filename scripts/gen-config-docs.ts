/**
 * Writes docs/configuration.md from the config schema: `npm run docs:config`.
 * With `--check`, writes nothing and exits 1 when the committed file is out of date.
 */
import { renderConfigDocs } from '../src/config/docs.js';
import { writeGenerated } from './generated.js';

writeGenerated([['docs/configuration.md', renderConfigDocs()]], 'npm run docs:config');
