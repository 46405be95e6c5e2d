/**
 * Carrier keywords in inbound SMS (the CTIA set Twilio honours on long codes and toll-free numbers): a reply
 * of STOP opts the sender out, START opts them back in, HELP asks for information. Twilio's rule, which
 * Herald follows so that its suppressions agree with Twilio's own block list: only a message that is the
 * keyword alone counts — "STOP PLEASE" or "stop it" is a message, not an opt-out — compared without regard
 * to case or to whitespace around it.
 *
 * Anything else around the word, punctuation included ("STOP!", "stop."), makes it a message too: Twilio
 * does not block on those either, and a person who writes "Stop!" to a human on the other end is answered
 * by one. The word must be plain ASCII letters before it is upper-cased, since some other letters upper-case
 * into ASCII ("ſtop" to "STOP", "quıt" to "QUIT").
 */

export type SmsKeywordAction = "opt_out" | "opt_in" | "help";

const keywords: Readonly<Record<string, SmsKeywordAction>> = {
  STOP: "opt_out",
  STOPALL: "opt_out",
  UNSUBSCRIBE: "opt_out",
  CANCEL: "opt_out",
  END: "opt_out",
  QUIT: "opt_out",
  START: "opt_in",
  YES: "opt_in",
  UNSTOP: "opt_in",
  HELP: "help",
  INFO: "help",
};

/** The keywords of each action, upper-case (for documentation and tests). */
export const smsKeywords = (action: SmsKeywordAction): string[] =>
  Object.keys(keywords).filter((k) => keywords[k] === action);

export interface SmsKeyword {
  /** The keyword, upper-case (`STOP`). */
  keyword: string;
  action: SmsKeywordAction;
}

/** The carrier keyword an inbound SMS body is, if it is one (see above). */
export function smsKeyword(body: string): SmsKeyword | undefined {
  const word = body.trim();
  if (!/^[A-Za-z]{1,11}$/.test(word)) return undefined;
  const keyword = word.toUpperCase();
  const action = Object.hasOwn(keywords, keyword) ? keywords[keyword] : undefined;
  return action ? { keyword, action } : undefined;
}
