/** An error as one short line for a log field (its name and message, never a stack or the object's fields). */
export const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 200);
