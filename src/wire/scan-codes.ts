/**
 * Result codes of framing and scanning. Bad network input is a code, never an
 * exception. Each code maps to one proxy outcome (see proxy/outcomes.ts).
 */
export const ScanCode = {
  OK: 'ok',
  EMPTY: 'empty',
  BAD_START_LINE: 'bad-start-line',
  BAD_REQUEST_URI: 'bad-request-uri',
  UNSUPPORTED_VERSION: 'unsupported-version',
  BAD_STATUS_CODE: 'bad-status-code',
  BAD_HEADER_LINE: 'bad-header-line',
  INCOMPLETE_HEADERS: 'incomplete-headers',
  TOO_MANY_HEADERS: 'too-many-headers',
  HEADER_TOO_LONG: 'header-too-long',
  BAD_CONTENT_LENGTH: 'bad-content-length',
  DUPLICATE_CONTENT_LENGTH: 'duplicate-content-length',
  MISSING_CONTENT_LENGTH: 'missing-content-length',
  BODY_TRUNCATED: 'body-truncated',
  MESSAGE_TOO_LARGE: 'message-too-large',
} as const;
export type ScanCode = (typeof ScanCode)[keyof typeof ScanCode];
