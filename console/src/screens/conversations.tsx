import { ComingSoon } from "./comingSoon.js";

/** Placeholder until the Conversations screen is built (see docs/console.md, "Adding a screen"). */
export function Conversations() {
  return <ComingSoon title="Conversations" />;
}
