import { describe, expect, it } from 'vitest';
import { ASSETS } from './assets.generated.js';
import { ASSETS_DIR, ASSET_FILES, readAssets } from './embed-assets.js';

describe('embedded dashboard assets', () => {
  it('match the files in src/dashboard/assets (run `npx tsx src/dashboard/embed-assets.ts` after editing)', () => {
    const files = readAssets(ASSETS_DIR);
    for (const name of ASSET_FILES) expect(ASSETS[name], name).toBe(files[name]);
  });

  it('reference nothing outside the controller', () => {
    for (const name of ASSET_FILES) {
      const text = ASSETS[name];
      // The SVG namespace is an identifier, not a request.
      const urls = [...text.matchAll(/https?:\/\/[^\s'"`)]+/g)].map((m) => m[0]);
      expect(
        urls.filter((u) => u !== 'http://www.w3.org/2000/svg'),
        name,
      ).toEqual([]);
    }
  });
});
