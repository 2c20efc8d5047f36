/**
 * The identifiers several contracts carry, defined once: a message of one actor names the
 * same session, player, VM or chat as a message of another, so they must accept the same
 * values. An id one contract takes and another refuses would be dead-lettered halfway.
 */
import { z } from 'zod';

/** A session id (`<player key>-<n>`) is at most this long. */
export const SESSION_ID_MAX_LENGTH = 64;

export const sessionIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/)
  .max(SESSION_ID_MAX_LENGTH);

/** A player's key: the token of their actors' subjects. */
export const playerIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

/** An Azure VM's name; it derives from the session (`docs/azure.md`). */
export const vmNameSchema = z.string().regex(/^[A-Za-z0-9-]{1,64}$/);

/** A name Respawn gives a disk, a snapshot or a NIC (Azure allows 80 characters). */
export const resourceNameSchema = z.string().regex(/^[A-Za-z0-9-]{1,80}$/);

/** A Telegram chat id: a signed 64-bit integer, as text. */
export const chatIdSchema = z.string().regex(/^-?\d{1,20}$/);
