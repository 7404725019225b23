import { ScanCode } from '../wire/scan-codes.ts';

/**
 * What sipspan does with a message it will not forward as is. Status 0 means
 * drop (count and log); otherwise answer statelessly with that status.
 */
export interface Rejection {
  status: number;
  /** Closed set: the `reason` label of sipspan_parse_errors_total / sipspan_messages_dropped_total. */
  reason: string;
  /** Extra header lines for the answer (e.g. `Unsupported:` with a 420). */
  extra: string | null;
}

export const REASON_PHRASES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'Version Not Supported',
  513: 'Message Too Large',
};

/** The answer a request gets for each scan failure (RFC 4475 verdicts; ../shared/sip-corpus/README.md). */
export function statusForScanCode(code: ScanCode): number {
  switch (code) {
    case ScanCode.UNSUPPORTED_VERSION:
      return 505;
    case ScanCode.MESSAGE_TOO_LARGE:
      return 513;
    case ScanCode.EMPTY:
      return 0;
    default:
      return 400;
  }
}
