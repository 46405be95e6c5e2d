/**
 * Linking by provider message id (API.md): a registered provider message id links an event whose message id
 * equals it or starts with it followed by "." — SendGrid's `sg_message_id` is the `X-Message-Id` the send
 * returned, ".", and a suffix, and a legacy `X-Message-Id` has dots of its own
 * (`14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0` belongs to `14c5d75ce93.dfd.64b469`); an id without
 * a "." (Twilio's `MessageSid`) links only itself. Where several registered ids link one event (`a` and `a.b`
 * both link `a.b.c`), the longest wins. One rule for every provider, written here once: the statements that
 * link take what these functions compute as parameters, and the index of unlinked events and the link locks
 * are keyed by `messageIdRoot`.
 */

/** The longest provider message id the messages API takes (`POST /api/v1/messages`). */
export const maxProviderMessageIdLength = 500;

/**
 * The lengths of the registered ids that could link an event with `messageId`, longest first: the whole id,
 * then each prefix ending just before a "." — only as long as a registered id can be.
 */
export function linkPrefixLengths(messageId: string): number[] {
  const lengths = messageId.length <= maxProviderMessageIdLength ? [messageId.length] : [];
  for (
    let dot = messageId.lastIndexOf(".", maxProviderMessageIdLength);
    dot > 0;
    dot = messageId.lastIndexOf(".", dot - 1)
  )
    lengths.push(dot);
  return lengths;
}

/** The registered ids that could link an event with `messageId`, longest first (see `linkPrefixLengths`). */
export const linkCandidates = (messageId: string): string[] =>
  linkPrefixLengths(messageId).map((length) => messageId.slice(0, length));

/** Of the `registered` ids, the one that links an event with `messageId` (the longest), if any. */
export const linkingId = (messageId: string, registered: ReadonlySet<string>): string | undefined =>
  linkCandidates(messageId).find((candidate) => registered.has(candidate));

/**
 * What a registered id shares with every message id it links: the text before the first ".". Unlinked
 * events are indexed by it (`message_events_unlinked_idx`, `split_part(provider_message_id, '.', 1)`), and
 * their link locks taken on it.
 */
export function messageIdRoot(messageId: string): string {
  const dot = messageId.indexOf(".");
  return dot === -1 ? messageId : messageId.slice(0, dot);
}

/**
 * An RFC 5322 message id as stored and compared (`Message-ID`, `In-Reply-To`, `References`): without its
 * angle brackets and surrounding space; undefined when nothing is left.
 */
export function messageIdOf(id: string | null | undefined): string | undefined {
  const bare = id
    ?.trim()
    .replace(/^<(.*)>$/, "$1")
    .trim();
  return bare ? bare : undefined;
}
