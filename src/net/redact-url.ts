// URLs in logs: scheme, host, port and path only. Query strings carry signed-URL tokens and
// user:pass@ carries credentials; neither may reach a log line.

/** `url` without credentials, query string or fragment; text that is not a URL is cut the same way. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.href;
  } catch {
    return url.replace(/[?#][\s\S]*$/, '').replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1');
  }
}
