import { ComingSoon } from "./comingSoon.js";

/** Placeholder until the Dead letters screen is built (see docs/console.md, "Adding a screen"). */
export function DeadLetters() {
  return <ComingSoon title="Dead letters" />;
}
