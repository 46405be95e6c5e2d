import { addressProblem } from "../domain/address.js";
import type { Channel } from "../domain/vocabularies.js";
import { invalidFields } from "./problem.js";

/** Refuse an address its channel cannot have, naming where it was (see `addressProblem`). */
export function checkAddresses(items: { channel: Channel; address: string; path: string }[]) {
  const errors = items.flatMap(({ channel, address, path }) => {
    const problem = addressProblem(channel, address);
    return problem ? [{ path, message: problem }] : [];
  });
  if (errors.length > 0) throw invalidFields(errors);
}
