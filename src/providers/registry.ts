import type { Provider as ProviderName } from "../domain/vocabularies.js";
import { mailgun } from "./mailgun.js";
import { postmark } from "./postmark.js";
import { resend } from "./resend.js";
import { sendgrid } from "./sendgrid.js";
import { ses } from "./ses.js";
import { twilio } from "./twilio.js";
import type { ProviderModule, SourceProvider } from "./types.js";

/**
 * The providers Herald knows, by the `{provider}` segment of a source's URL. `webhookProviders` are those
 * whose webhooks it takes — the route, the receive path, the processor and `herald reprocess` find a module
 * here and nowhere else. Adding one: its file under `providers/` (a `ProviderModule`), its line below, its
 * fixtures under `test/fixtures/<name>/` and its tests.
 */
const webhookProviders: Readonly<Record<string, ProviderModule>> = {
  mailgun,
  postmark,
  resend,
  sendgrid,
  ses,
  twilio,
};

const sourceProviders: Readonly<Record<ProviderName, SourceProvider>> = {
  sendgrid,
  twilio,
  mailgun,
  postmark,
  ses,
  resend,
};

/** The module that takes `name`'s webhooks, if any (a path segment from the internet: anything else is 404). */
export function providerFor(name: string): ProviderModule | undefined {
  return Object.hasOwn(webhookProviders, name) ? webhookProviders[name] : undefined;
}

/** The names of the providers whose webhooks are taken. */
export const webhookProviderNames = (): string[] => Object.keys(webhookProviders);

/** How a source for `name` has its verification settings checked. */
export const sourceProvider = (name: ProviderName): SourceProvider => sourceProviders[name];
