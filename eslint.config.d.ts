/** Types of what eslint.config.js exports besides the configuration, for test/architecture. */
export declare const LAYERS: Readonly<Record<string, readonly string[]>>;
export declare const FORBIDDEN_PACKAGES: Readonly<Record<string, readonly string[]>>;
export declare const NARROW_ALLOWANCES: Readonly<Record<string, readonly RegExp[]>>;
declare const config: unknown;
export default config;
