/**
 * A module's `rawType` for providers that name an event's type in a field of the raw event: the first of
 * `fields` that holds text (Twilio's `MessageStatus`, else its older `SmsStatus`).
 */
export const rawTypeField =
  (...fields: string[]) =>
  (raw: Record<string, unknown>): string | null => {
    for (const field of fields) {
      const value = raw[field];
      if (typeof value === "string" && value !== "") return value;
    }
    return null;
  };
