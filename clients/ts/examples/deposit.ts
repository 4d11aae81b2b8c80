// A buyer locks a payment in escrow from their own wallet, with the generated client and
// @solana/kit: create the escrow with its policy and fund it, in one transaction.
import {
  type Address,
  type Rpc,
  type SolanaRpcApi,
  type TransactionSigner,
  getAddressEncoder,
  getProgramDerivedAddress,
  getU64Encoder,
} from "@solana/kit";
import {
  ESCROW_PROGRAM_ADDRESS,
  type Escrow,
  fetchMaybeEscrow,
  findVaultPda,
  getCreateInstructionAsync,
  getDepositInstruction,
} from "../src/generated";
import { signInWallet } from "./wallet";

export type Deal = {
  id: bigint;
  seller: Address;
  mint: Address;
  tokenProgram: Address;
  /** The buyer's token account for `mint`, which pays. */
  buyerToken: Address;
  amount: bigint;
  approvers: Address[];
  threshold: number;
  timelockSecs: number;
  /** Unix seconds. */
  refundAfter: bigint;
};

/** `["escrow", buyer, id as u64 LE]`: the escrow's address. */
export async function escrowAddress(buyer: Address, id: bigint): Promise<Address> {
  const [pda] = await getProgramDerivedAddress({
    programAddress: ESCROW_PROGRAM_ADDRESS,
    seeds: ["escrow", getAddressEncoder().encode(buyer), getU64Encoder().encode(id)],
  });
  return pda;
}

/** Builds, signs with the buyer's wallet and returns the wire transaction (base64). */
export async function createAndDeposit(
  rpc: Rpc<SolanaRpcApi>,
  buyer: TransactionSigner,
  deal: Deal,
): Promise<string> {
  const escrow = await escrowAddress(buyer.address, deal.id);
  const [vault] = await findVaultPda({ escrow });
  const create = await getCreateInstructionAsync({
    buyer,
    escrow,
    mint: deal.mint,
    vault,
    tokenProgram: deal.tokenProgram,
    id: deal.id,
    seller: deal.seller,
    amount: deal.amount,
    dealRef: new Uint8Array(32),
    approvers: deal.approvers,
    threshold: deal.threshold,
    timelockSecs: deal.timelockSecs,
    refundAfter: deal.refundAfter,
  });
  const deposit = getDepositInstruction({
    buyer,
    escrow,
    mint: deal.mint,
    buyerToken: deal.buyerToken,
    vault,
    tokenProgram: deal.tokenProgram,
  });
  return signInWallet(rpc, buyer, [create, deposit]);
}

/** The escrow's state once funded, or null when it does not exist (yet, or any more). */
export async function escrowState(rpc: Rpc<SolanaRpcApi>, escrow: Address): Promise<Escrow | null> {
  const account = await fetchMaybeEscrow(rpc, escrow);
  return account.exists ? account.data : null;
}
