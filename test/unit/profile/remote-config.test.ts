import { describe, expect, it } from 'vitest';
import { parseRemoteConfig, signatureUrl } from '../../../helper/profile/remote-config.js';

describe('parseRemoteConfig', () => {
  it('accepts a full config and fills the default interval', () => {
    expect(parseRemoteConfig('{"url":"https://p.corp.example/tg/corp.json","intervalSeconds":60,"ca":"/etc/tunnelgate/ca.pem"}')).toEqual({
      ok: true,
      config: { url: 'https://p.corp.example/tg/corp.json', intervalSeconds: 60, ca: '/etc/tunnelgate/ca.pem' },
    });
    expect(parseRemoteConfig('{"url":"https://192.0.2.2:8443/corp.json"}')).toEqual({
      ok: true,
      config: { url: 'https://192.0.2.2:8443/corp.json', intervalSeconds: 300 },
    });
  });

  it.each([
    ['{"url":"http://p.example/corp.json"}', 'url: must be an https:// URL'],
    ['{"url":"https://p.example/c.json","intervalSecs":60}', 'intervalSecs: unknown field (known: url, intervalSeconds, ca)'],
    ['{"intervalSeconds":60}', 'url: missing required field'],
    ['{"url":"https://p.example/c.json","intervalSeconds":0}', 'intervalSeconds: must be a whole number of seconds from 1 to 86400'],
    ['{"url":"https://p.example/c.json","intervalSeconds":"300"}', 'intervalSeconds: must be a whole number of seconds from 1 to 86400'],
    ['{"url":"https://p.example/c.json","ca":"ca.pem"}', 'ca: must be an absolute path to a PEM file'],
    ['{"url":"https://user:pw@p.example/c.json"}', 'url: must not carry credentials (they would show in status)'],
    ['{"url":"https://p.example/c.json#x"}', 'url: must not have a #fragment'],
    ['{"url":"https://[bad/c.json"}', 'url: is not a valid URL'],
    ['[]', 'must be a JSON object'],
    ['{"url":"https://a/","url":"https://b/"}', 'url: duplicate key (only one may appear)'],
  ])('%s -> %s', (text, problem) => {
    const r = parseRemoteConfig(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toContain(problem);
  });

  it('reports a syntax error with its position', () => {
    const r = parseRemoteConfig('{"url": "https://a/",\n}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]).toMatch(/invalid JSON at line 2, column 1/);
  });
});

describe('signatureUrl', () => {
  it('appends .sig to the path and keeps the query', () => {
    expect(signatureUrl('https://a.example/p/corp.json')).toBe('https://a.example/p/corp.json.sig');
    expect(signatureUrl('https://a.example/p/corp.json?x=1')).toBe('https://a.example/p/corp.json.sig?x=1');
  });
});
