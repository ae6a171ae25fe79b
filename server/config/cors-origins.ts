/**
 * `CORS_ORIGIN`: a comma-separated list of origins, or `*`. An origin is what a browser sends in its
 * `Origin` header (RFC 6454 serialisation): `scheme://host[:port]`, lower case, no path, no trailing
 * slash, no default port; or `null`, the opaque origin a page opened from disk (`file://`) sends, so
 * the standalone demo page works from disk with `CORS_ORIGIN=null`. An entry in any other form could
 * never match a request, so it is refused at start instead of silently blocking the site.
 */

const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * Splits and checks the list; `""` gives `[]` (same origin only).
 * @throws Error naming the first entry that is not an origin (and the origin it probably meant).
 */
export function parseCorsOrigins(list: string): readonly string[] {
  const entries = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of entries) {
    if (entry === "*" || entry === "null" || (ORIGIN.test(entry) && sameAsParsed(entry))) continue;
    const meant = guess(entry);
    throw new Error(
      `${JSON.stringify(entry)} is not an origin (scheme://host[:port], no path, lower case), null or *` +
        (meant && meant !== entry ? `; did you mean ${meant}?` : ""),
    );
  }
  return Object.freeze(entries);
}

/** For http(s), the URL parser's own origin must be the entry (catches `:80` on http, `:443` on https). */
function sameAsParsed(entry: string): boolean {
  if (!entry.startsWith("http://") && !entry.startsWith("https://")) return true;
  try {
    return new URL(entry).origin === entry;
  } catch {
    return false;
  }
}

function guess(entry: string): string | undefined {
  try {
    const origin = new URL(entry).origin;
    return origin === "null" ? undefined : origin;
  } catch {
    return undefined;
  }
}
