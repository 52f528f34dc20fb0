import { describe, expect, it } from 'vitest';
import { ProxyError, bypassesProxy, proxyAuthorization, proxyFor, proxySettingsFromEnv } from './proxy.js';

describe('proxy settings from the environment', () => {
  it('reads both spellings (lower case wins), adds http:// to a bare host:port, splits NO_PROXY', () => {
    const settings = proxySettingsFromEnv({
      HTTPS_PROXY: 'http://upper:3128',
      https_proxy: 'http://lower:3128',
      HTTP_PROXY: 'proxy.corp:8080',
      NO_PROXY: ' .internal, 10.0.0.0/8 ,,localhost ',
    });
    expect(settings.httpsProxy?.href).toBe('http://lower:3128/');
    expect(settings.httpProxy?.href).toBe('http://proxy.corp:8080/');
    expect(settings.noProxy).toEqual(['.internal', '10.0.0.0/8', 'localhost']);
    expect(proxySettingsFromEnv({})).toEqual({ noProxy: [] });
  });

  it('refuses a proxy that is not an http(s) URL, naming the variable', () => {
    expect(() => proxySettingsFromEnv({ HTTPS_PROXY: 'socks5://p:1080' })).toThrow(ProxyError);
    expect(() => proxySettingsFromEnv({ HTTPS_PROXY: 'socks5://p:1080' })).toThrow(/HTTPS_PROXY must be/);
  });

  it('NO_PROXY: hosts and their subdomains, leading dots and stars, ports, IPv4 CIDRs, IPv6, *', () => {
    const bypass = (url: string, ...entries: string[]) => bypassesProxy(new URL(url), entries);
    expect(bypass('https://ghe.corp.example/api', 'corp.example')).toBe(true);
    expect(bypass('https://ghe.corp.example/api', '.corp.example')).toBe(true);
    expect(bypass('https://ghe.corp.example/api', '*.corp.example')).toBe(true);
    expect(bypass('https://notcorp.example/api', 'corp.example')).toBe(false);
    expect(bypass('https://api.github.com', 'github.com')).toBe(true);
    expect(bypass('https://api.github.com', 'github.com:443')).toBe(true);
    expect(bypass('https://api.github.com', 'github.com:8443')).toBe(false);
    expect(bypass('http://10.1.2.3:8080', '10.0.0.0/8')).toBe(true);
    expect(bypass('http://11.1.2.3:8080', '10.0.0.0/8')).toBe(false);
    expect(bypass('http://172.20.0.1', '172.16.0.0/12')).toBe(true);
    expect(bypass('http://[::1]:8080', '::1')).toBe(true);
    expect(bypass('http://[::1]:8080', '[::1]:8080')).toBe(true);
    expect(bypass('https://anything', '*')).toBe(true);
    expect(bypass('https://10.0.0.1', '0.0.0.1')).toBe(false);
  });

  it('picks the proxy by scheme', () => {
    const settings = proxySettingsFromEnv({
      HTTPS_PROXY: 'http://s:1',
      HTTP_PROXY: 'http://p:2',
      NO_PROXY: 'x',
    });
    expect(proxyFor(new URL('https://a'), settings)?.host).toBe('s:1');
    expect(proxyFor(new URL('http://a'), settings)?.host).toBe('p:2');
    expect(proxyFor(new URL('https://x'), settings)).toBeUndefined();
  });

  it('Proxy-Authorization from the URL’s credentials, percent-decoded', () => {
    expect(proxyAuthorization(new URL('http://user:p%40ss@proxy:3128'))).toBe(
      `Basic ${Buffer.from('user:p@ss').toString('base64')}`,
    );
    expect(proxyAuthorization(new URL('http://proxy:3128'))).toBeUndefined();
  });
});
