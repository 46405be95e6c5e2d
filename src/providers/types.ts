import type { CanonicalEventType } from "../domain/messageStatus.js";
import type { Channel, Provider as ProviderName } from "../domain/vocabularies.js";
import type { HeraldError } from "../errors.js";

/**
 * What a provider module is: one file per provider under `providers/`, named in `registry.ts`. Everything here
 * is pure (no database, no clock but the one passed in): the webhook route, the receive path, the processor
 * and `herald reprocess` call a module only through the registry, so adding a provider is one new file, one
 * registry line, and its fixtures and tests.
 */

/** A provider's request to a webhook source's URL, as received. */
export interface IncomingRequest {
  headers: Record<string, string | string[] | undefined>;
  /** The body's bytes exactly as received (signatures are over them). */
  body: Buffer;
  remoteIp: string | undefined;
  /**
   * The URL the provider called, as it knows it — scheme, host, path and query (Twilio signs it): from
   * `HERALD_PUBLIC_URL` when set, else from the request itself (its `X-Forwarded-Proto`/`-Host` only when
   * `HERALD_TRUST_PROXY` is on).
   */
  publicUrl: string;
}

/** A source's verification settings (`verification` of `POST /api/v1/sources`), null when it has none. */
export type VerificationSettings = Readonly<Record<string, string>>;

/** Why verification settings are refused: `errors` name each field (by its name, e.g. `public_key`). */
export interface VerificationRefusal {
  detail: string;
  errors: { field: string; message: string }[];
}

/** A delivery body read: its raw events, or why it is refused. */
export type ParseResult =
  /** `text`: the body decoded, byte for byte (a leading BOM included). */
  | { ok: true; events: Record<string, unknown>[]; text: string }
  /** `path`: where in the body the failure is (`/body`, or `/body/3` for the fourth event). */
  | { ok: false; code: "invalid_json" | "validation_failed"; detail: string; path: string };

/** A provider event in Herald's canonical shape. */
export interface CanonicalEvent {
  type: CanonicalEventType;
  /** When it happened (the provider's timestamp), else when the delivery was received. */
  eventAt: Date;
  /** The provider's event id (indexable), else a hash of the event's natural fields: the same event, the same key. */
  dedupeKey: string;
  providerEventId: string | null;
  /** The provider's id of the message the event is about; linked by `domain/messageIds.ts`'s rule. */
  providerMessageId: string | null;
  /** Herald's own message id, when the provider echoes it back (SendGrid's custom argument `herald_message_id`). */
  heraldMessageId: string | null;
  recipient: string | null;
  url: string | null;
  ip: string | null;
  userAgent: string | null;
  reason: string | null;
  bounceClassification: string | null;
  machineOpen: boolean | null;
  groupId: number | null;
  payload: Record<string, unknown>;
}

/** What a delivery that was kept is answered with; `json` is serialized as `application/json`. */
export type ProviderAnswer =
  | { status: number; json: Record<string, unknown> }
  | { status: number; contentType: string; text: string };

/** A kept delivery: its archive row and how many events it holds. */
export interface ReceivedDelivery {
  deliveryId: number;
  events: number;
}

/**
 * What authentication may use beyond the request, given by the ingest layer (modules stay free of the
 * database and the network).
 */
export interface AuthContext {
  /** Now, by the clock of the process (timestamps are checked against it). */
  now(): Date;
  /**
   * Record `token` as used for this source until `expiresAt`; false when it is recorded already and not
   * expired: a replay. Durable and shared by every process on the database.
   */
  firstUse(token: string, expiresAt: Date): Promise<boolean>;
  /**
   * The PEM text of the certificate at `url` (SNS's `SigningCertURL`, which the module has checked is SNS's):
   * fetched over HTTPS and cached, or the operator's file (`HERALD_SNS_CERTIFICATE_FILE`). Rejects when it
   * cannot be had.
   */
  certificate(url: string): Promise<string>;
}

/**
 * A request about the webhook itself rather than a delivery of events (SNS's subscription confirmations):
 * answered 200 at the door, logged, and not archived.
 */
export interface ControlMessage {
  /** What it is (SNS's `Type`), for the log and the answer. */
  kind: string;
  /** A URL of the provider's to GET to act on it (SNS's `SubscribeURL`), when the source's settings allow. */
  visit?: string;
  /** For the log: what was done, or what the operator has to do. */
  note: string;
}

/** What every provider a source may be created for states: how its verification settings are checked. */
export interface SourceProvider {
  /** The `{provider}` segment of a source's URL and the `provider` of its rows. */
  readonly name: ProviderName;
  readonly channel: Channel;
  /** The fields its `verification` object must hold. */
  readonly verificationFields: readonly string[];
  /** Checked when a source is created; undefined when usable. */
  validateVerification(settings: VerificationSettings): VerificationRefusal | undefined;
}

/** A provider whose webhooks Herald takes. */
export interface ProviderModule extends SourceProvider {
  /** Request headers kept with the archived body (for audits and reprocessing), lower-case. */
  readonly keptHeaders: readonly string[];
  /**
   * Whether the request comes from the provider: its signature (or credentials) checked against the source's
   * settings on the exact bytes, headers and public URL. Undefined when it passes or the source has no
   * settings (an unverified source); else the refusal (`invalid_signature`, 401), and nothing is stored.
   */
  authenticate(
    request: IncomingRequest,
    settings: VerificationSettings | null,
    context: AuthContext,
  ): HeraldError | undefined | Promise<HeraldError | undefined>;
  /**
   * Whether an authenticated request is a control message (`ControlMessage`) rather than a delivery; absent
   * for providers that send none. Called after `authenticate`, with the source's settings.
   */
  control?(body: Buffer, settings: VerificationSettings | null): ControlMessage | undefined;
  /**
   * A delivery body's raw events, or why the body is refused (archived as rejected, answered 400). `headers`:
   * the request's when it is received, its archived ones (`keptHeaders`) when it is processed — for a module
   * whose events are keyed by a header (Resend's `svix-id`), read only from its kept headers.
   */
  parse(body: Buffer, headers?: IncomingRequest["headers"]): ParseResult;
  /**
   * Whether the body is a JSON array whose items are the raw events, in order (SendGrid's): each stored event
   * then keeps where its bytes sit in the archived body instead of a copy of them. Otherwise (Twilio's form
   * body) the payload stored is the raw event `parse` made.
   */
  readonly eventsAreBodyItems: boolean;
  /** When a raw event happened (the month partition its rows go to), cheaply: `normalize(...).eventAt`. */
  eventTime(raw: Record<string, unknown>, receivedAt: Date): Date;
  /** A raw event in the canonical shape; `receivedAt` stands in for a missing or implausible time. */
  normalize(raw: Record<string, unknown>, receivedAt: Date): CanonicalEvent;
  /**
   * The provider's own name of a raw event's type (SendGrid's `event`, Postmark's `RecordType`, SES's
   * `eventType`…), shown beside the canonical type; null when it has none.
   */
  rawType(raw: Record<string, unknown>): string | null;
  /** The registered provider message ids that could link an event's id, longest first (`domain/messageIds.ts`). */
  linkCandidates(messageId: string): string[];
  /**
   * The answer to a delivery that was kept (JSON, or TwiML for Twilio); `events`, its raw events when the
   * caller has them (Twilio answers an inbound message and a status callback differently).
   */
  answer(received: ReceivedDelivery, events?: readonly Record<string, unknown>[]): ProviderAnswer;
}
