use anchor_lang::prelude::*;

/// One error per refusal; each message says what was wrong.
#[error_code]
pub enum EscrowError {
    // create: the policy and the deal
    #[msg("amount must be greater than zero")]
    ZeroAmount,
    #[msg("at least one approver is required")]
    NoApprovers,
    #[msg("at most 8 approvers are allowed")]
    TooManyApprovers,
    #[msg("an approver is listed twice")]
    DuplicateApprover,
    #[msg("the default (all-zero) key cannot be an approver")]
    DefaultApprover,
    #[msg("threshold must be between 1 and the number of approvers")]
    InvalidThreshold,
    #[msg("timelock_secs exceeds the 30-day maximum")]
    TimelockTooLong,
    #[msg("refund_after must be in the future")]
    RefundDeadlineInPast,
    #[msg("the seller must be a non-default key other than the buyer")]
    InvalidSeller,

    // create: Token-2022 mints whose extensions could take, freeze or block the vault's funds
    #[msg("mint has a permanent delegate, who could move the vault's tokens")]
    MintHasPermanentDelegate,
    #[msg("mint has a transfer hook, which could block payouts")]
    MintHasTransferHook,
    #[msg("mint is non-transferable")]
    MintNonTransferable,
    #[msg("mint allows confidential transfers, whose balances the escrow cannot account for")]
    MintConfidentialTransfer,
    #[msg("mint's new accounts start frozen")]
    MintDefaultFrozen,
    #[msg("mint can be paused, which would block payouts")]
    MintPausable,
    #[msg("mint has an extension this escrow does not support")]
    MintExtensionNotSupported,

    // accounts that must match what the escrow recorded
    #[msg("mint does not match the escrow's mint")]
    WrongMint,
    #[msg("token program does not match the escrow's token program")]
    WrongTokenProgram,
    #[msg("vault does not match the escrow's vault")]
    WrongVault,
    #[msg("buyer does not match the escrow's buyer")]
    WrongBuyer,
    #[msg("token account is not the seller's account for this mint")]
    WrongSellerTokenAccount,
    #[msg("token account is not the buyer's account for this mint")]
    WrongBuyerTokenAccount,
    #[msg("the mint must be writable to harvest transfer fees withheld in the vault")]
    MintNotWritable,

    // lifecycle
    #[msg("escrow is already funded")]
    AlreadyFunded,
    #[msg("escrow is not funded")]
    NotFunded,
    #[msg("the vault received nothing after transfer fees")]
    NothingReceived,
    #[msg("signer is not an approver of this escrow")]
    NotAnApprover,
    #[msg("this approver already approved this outcome")]
    AlreadyApproved,
    #[msg("this approver approved the other outcome; revoke that first")]
    ApprovedOtherOutcome,
    #[msg("this approver has not approved this outcome")]
    NotApproved,
    #[msg("this outcome is already scheduled")]
    OutcomeAlreadyScheduled,
    #[msg("the other outcome is scheduled; it must be disputed first")]
    OtherOutcomeScheduled,
    #[msg("only the buyer or the seller may dispute")]
    NotAParty,
    #[msg("nothing this party may dispute is scheduled")]
    NothingToDispute,
    #[msg("this party has already used its dispute")]
    AlreadyDisputed,
    #[msg("the dispute window has closed")]
    DisputeWindowClosed,
    #[msg("no release is scheduled")]
    ReleaseNotScheduled,
    #[msg("the timelock has not elapsed")]
    TimelockNotElapsed,
    #[msg("a release is scheduled; the refund deadline does not apply")]
    ReleaseScheduled,
    #[msg("refund needs a scheduled refund past its eta, the seller's signature, or the refund deadline")]
    RefundNotAllowed,
    #[msg("arithmetic overflow")]
    ArithmeticOverflow,

    // deal identity (added last: earlier codes keep their numbers)
    #[msg("signed for another deal at this address: created_slot does not match this escrow's")]
    WrongDeal,
    #[msg("an escrow cannot close in the slot it was created in; send again in the next slot")]
    ClosedInCreationSlot,
}
