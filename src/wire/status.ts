/**
 * RFC 3261 §22.2: 401 Unauthorized and 407 Proxy Authentication Required ask for the request again
 * with credentials, in the same call (Call-ID, From tag) with a new CSeq. The call goes on with the
 * retried request: a challenge is neither its outcome nor its setup.
 */
export function isCredentialChallenge(status: number): boolean {
  return status === 401 || status === 407;
}
