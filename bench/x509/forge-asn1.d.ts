// node-forge's asn1 module on its own (the package's types declare only the whole "node-forge").
declare module "node-forge/lib/asn1.js" {
  import type { asn1 } from "node-forge";
  const a: typeof asn1;
  export default a;
}
