/**
 * Connection reuse for @kubernetes/client-node. Its KubeConfig builds a new http(s).Agent for every request (and
 * every watch), without keep-alive, so each API call opens its own connection: a TCP connect and, against a real
 * API server, a TLS handshake on both sides. In a burst (a pod and a Secret per runner, dozens at once) those
 * handshakes cost more CPU than the calls themselves, on the controller and on the API server. `reuseConnections`
 * makes one KubeConfig hand out one keep-alive agent per distinct connection setting (server, CA, client certificate,
 * TLS options) instead; what each request carries (its token, headers, signal) is untouched. Agents of a proxy
 * (`proxy-url`) are left as client-node makes them.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

const REUSING = Symbol('runner-fleet.reuseConnections');

/** The TLS and socket settings that make two agents interchangeable. */
const KEYED_OPTIONS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'rejectUnauthorized',
  'servername',
  'ciphers',
  'honorCipherOrder',
  'ecdhCurve',
  'crl',
  'dhparam',
  'secureOptions',
  'secureProtocol',
  'sessionIdContext',
] as const;

function keyOf(agent: http.Agent): string {
  const options = (agent as http.Agent & { options?: Record<string, unknown> }).options ?? {};
  const parts: string[] = [agent instanceof https.Agent ? 'https' : 'http'];
  for (const name of KEYED_OPTIONS) {
    const value = options[name];
    if (value === undefined) continue;
    parts.push(`${name}=${Buffer.isBuffer(value) ? value.toString('base64') : JSON.stringify(value)}`);
  }
  return parts.join('\n');
}

/**
 * Makes `kubeConfig` reuse connections (keep-alive, one agent per distinct setting). Idempotent; returns it.
 */
export function reuseConnections(kubeConfig: KubeConfig): KubeConfig {
  const marked = kubeConfig as KubeConfig & { [REUSING]?: true };
  if (marked[REUSING]) return kubeConfig;
  marked[REUSING] = true;
  const agents = new Map<string, http.Agent>();
  const shared = (made: unknown): unknown => {
    // Only client-node's own plain agents: a proxy's agent (https-proxy-agent, socks) stays as it is.
    if (
      !(made instanceof http.Agent) ||
      (made.constructor !== http.Agent && made.constructor !== https.Agent)
    ) {
      return made;
    }
    const key = keyOf(made);
    let agent = agents.get(key);
    if (agent === undefined) {
      const options = { ...(made as http.Agent & { options?: object }).options, keepAlive: true };
      agent = made instanceof https.Agent ? new https.Agent(options) : new http.Agent(options);
      agents.set(key, agent);
    }
    return agent;
  };
  // API calls: the agent is set on the request context.
  const applySecurityAuthentication = kubeConfig.applySecurityAuthentication.bind(kubeConfig);
  kubeConfig.applySecurityAuthentication = async (context) => {
    await applySecurityAuthentication(context);
    const agent = context.getAgent();
    if (agent !== undefined) context.setAgent(shared(agent) as http.Agent);
  };
  // Watches (and anything else built from fetch options): the agent is set on the options.
  const applyToHTTPSOptions = kubeConfig.applyToHTTPSOptions.bind(kubeConfig);
  kubeConfig.applyToHTTPSOptions = async (opts) => {
    await applyToHTTPSOptions(opts);
    const withAgent = opts as { agent?: unknown };
    if (withAgent.agent !== undefined) withAgent.agent = shared(withAgent.agent);
  };
  return kubeConfig;
}
