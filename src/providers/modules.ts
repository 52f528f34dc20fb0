/**
 * The provider kinds: one line per folder of src/providers. The fleet schema's `provider:` block, the docs and the
 * registry are derived from this list, and a test checks that it names every provider folder and nothing else. Adding
 * a provider is a folder (schema.ts, module.ts, its implementation, a contract test) and one line here.
 */
import { ec2Module } from './ec2/module.js';
import { kubernetesModule } from './kubernetes/module.js';
import { processModule } from './process/module.js';
import { simModule } from './sim/module.js';

export const providerModules = [processModule, simModule, kubernetesModule, ec2Module] as const;
