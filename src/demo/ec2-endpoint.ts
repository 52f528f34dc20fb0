/**
 * The one rule about `demo --provider ec2 --aws-endpoint URL`: an http(s) URL of a local AWS endpoint such as moto,
 * never AWS itself (the demo launches instances and writes parameters with placeholder credentials). Dependency-free,
 * so the CLI checks it while parsing its flags.
 */
export type EndpointCheck =
  { readonly ok: true; readonly endpoint: string } | { readonly ok: false; readonly message: string };

const AWS_HOST = /(^|\.)(amazonaws\.com(\.cn)?|api\.aws)$/i;

export function checkDemoEndpoint(text: string): EndpointCheck {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: `--aws-endpoint must be a URL such as http://127.0.0.1:5000, got ${text}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, message: `--aws-endpoint must be an http(s) URL, got ${text}` };
  }
  if (AWS_HOST.test(url.hostname)) {
    return {
      ok: false,
      message: `--aws-endpoint ${text} is AWS itself; the demo runs only against a local AWS endpoint such as moto`,
    };
  }
  return { ok: true, endpoint: text.replace(/\/+$/, '') };
}
