import { describe, expect, it } from 'vitest';
import { JitConfigError, decodeJitConfig } from './jit-config.js';

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64');

const rsa = {
  d: 'AQ==',
  dp: 'AQ==',
  dq: 'AQ==',
  exponent: 'AQAB',
  inverseQ: 'AQ==',
  modulus: 'AQ==',
  p: 'AQ==',
  q: 'AQ==',
};
const credentials = {
  scheme: 'OAuth',
  data: { clientId: 'c1', authorizationUrl: 'http://sim/_runner/oauth2/token' },
};

function encode(runner: unknown, extra: Record<string, string> = {}) {
  return b64({
    '.runner': b64(runner),
    '.credentials': b64(credentials),
    '.credentials_rsaparams': b64(rsa),
    ...extra,
  });
}

describe('decodeJitConfig', () => {
  it('reads the three files as actions/runner does, ignoring the case of setting names', () => {
    const decoded = decodeJitConfig(
      encode({
        AgentId: '12',
        AgentName: 'r1',
        PoolId: 1,
        PoolName: 'Default',
        ServerUrl: 'http://sim/_runner/',
        Ephemeral: 'True',
      }),
    );
    expect(decoded.settings).toMatchObject({
      agentId: 12,
      agentName: 'r1',
      poolId: 1,
      serverUrl: 'http://sim/_runner/',
      ephemeral: true,
      workFolder: '_work',
    });
    expect(decoded.credentials).toEqual({
      scheme: 'OAuth',
      clientId: 'c1',
      authorizationUrl: 'http://sim/_runner/oauth2/token',
    });
    expect(decoded.rsaParams.exponent).toBe('AQAB');
  });

  it('rejects what the runner would not start from', () => {
    const runner = { agentId: 1, agentName: 'r', poolId: 1, serverUrl: 'http://sim/' };
    expect(() => decodeJitConfig('not base64!')).toThrow(JitConfigError);
    expect(() => decodeJitConfig(b64('[]'))).toThrow(/not a JSON object/);
    expect(() => decodeJitConfig(b64({ '.runner': b64(runner) }))).toThrow(/must hold/);
    expect(() => decodeJitConfig(encode({ ...runner, serverUrl: undefined }))).toThrow(/serverUrl/);
    expect(() => decodeJitConfig(encode({ ...runner, agentId: 'x' }))).toThrow(/agentId/);
    expect(() => decodeJitConfig(b64({ '.runner': 5 }))).toThrow(/not a string/);
  });
});
