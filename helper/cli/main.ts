// The old entry path, dist/helper/cli/main.js, kept only while test/lab/helper-proc.ts,
// test/integration/audit.test.ts and the README still name it: the entry is helper/main.ts.
// Delete this file once they point at dist/helper/main.js.
import '../main.js';
