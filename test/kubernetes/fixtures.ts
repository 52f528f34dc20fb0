/** Small builders shared by the kubernetes suites. */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

export { scaleSetConfig } from '../../src/providers/kubernetes/scale-set.test-helpers.js';

/** Request options for a JSON merge patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
