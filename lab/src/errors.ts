/** An error the lab reports to its user as one line: what is wrong and where. */
export class LabError extends Error {
  override name = 'LabError';
}
