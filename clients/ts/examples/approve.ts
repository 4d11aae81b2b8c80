// A seller (or any approver) approves the release of an escrow from their own wallet. An
// escrow's address is reused once its deal closes, so the approval names the deal by the slot it
// was created in: read it from the account you checked, and the program refuses the signature on
// any later deal at the same address.
import { type Address, type Rpc, type SolanaRpcApi, type TransactionSigner } from "@solana/kit";
import { Outcome, fetchEscrow, getApproveInstruction } from "../src/generated";
import { signInWallet } from "./wallet";

/** What the approver checked before deciding to approve. */
export type Checked = {
  escrow: Address;
  seller: Address;
  amount: bigint;
  /** `createdSlot` of the escrow account as read. */
  createdSlot: bigint;
};

/**
 * Approves the release of exactly the deal that was checked; throws when the escrow now holds
 * another deal (it closed and the buyer opened a new one at the same address).
 */
export async function approveRelease(
  rpc: Rpc<SolanaRpcApi>,
  approver: TransactionSigner,
  checked: Checked,
): Promise<string> {
  const { data } = await fetchEscrow(rpc, checked.escrow);
  if (
    data.createdSlot !== checked.createdSlot ||
    data.seller !== checked.seller ||
    data.amount !== checked.amount
  ) {
    throw new Error(`${checked.escrow} is not the deal you checked any more; check it again`);
  }
  const approve = getApproveInstruction({
    approver,
    escrow: checked.escrow,
    outcome: Outcome.Release,
    createdSlot: checked.createdSlot,
  });
  return signInWallet(rpc, approver, [approve]);
}
