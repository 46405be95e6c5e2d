/** Twilio's form bodies (`application/x-www-form-urlencoded`), decoded exactly as signed. */

/** Form parameters as signed: each name with its values, in the order they came. */
export type FormParams = ReadonlyMap<string, readonly string[]>;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decoded form parameters of a body, or undefined when it is not `name=value&…` in UTF-8. */
export function formEntries(body: Buffer): { text: string; entries: [string, string][] } | undefined {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return undefined;
  }
  const entries: [string, string][] = [];
  for (const pair of text.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) return undefined;
    const [name, value] = new URLSearchParams(pair).entries().next().value as [string, string];
    entries.push([name, value]);
  }
  return { text, entries };
}

/** A form body's parameters, for the signature (undefined when it is not a form body). */
export function formParams(body: Buffer): FormParams | undefined {
  const form = formEntries(body);
  if (!form) return undefined;
  const params = new Map<string, string[]>();
  for (const [name, value] of form.entries) {
    const values = params.get(name);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  return params;
}
