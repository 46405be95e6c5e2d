import { sql } from "drizzle-orm";

/**
 * The outbound message a provider event links to by its provider message id (API.md's rule, computed by
 * `linkPrefixLengths` in domain/messageIds.ts): the messages of the longest registered id among the event's
 * candidates, looked up through `outbound_messages_provider_id_idx`; one message with that id takes it,
 * several (one send to many recipients) leave it to the recipient's (the earliest registered), or to none.
 * A scalar subquery over a row aliased `i` with `tenant_id`, `provider`, `provider_message_id`, `recipient`
 * and `link_lengths` (the lengths, as an int[] literal): the statement storing events and the one linking a
 * registration's waiting events both use it, so the rule is written once in SQL.
 */
export const messageOfProviderId = sql`(select case when count(*) = 1 then (array_agg(m.id))[1]
    else (array_agg(m.id order by m.created_at, m.id) filter (where m.to_address = i.recipient))[1] end
  from (
    select m.id, m.created_at, m.to_address, rank() over (order by length(m.provider_message_id) desc) as r
    from outbound_messages m
    where i.provider_message_id is not null and m.tenant_id = i.tenant_id and m.provider = i.provider
      and m.provider_message_id = any(array(
        select left(i.provider_message_id, n) from unnest(i.link_lengths::int[]) as n))
  ) m
  where m.r = 1)`;
