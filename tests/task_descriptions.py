"""Task descriptions of the kind product teams send, for tests that need many different ones."""

TASK_DESCRIPTIONS = [
    "Write the launch email for Orbit",
    "Draft a pricing page for the Pro plan",
    "Plan the spring webinar invitation for finance teams",
    "Write a win-back email for customers who cancelled",
    "Announce the new mobile app to trial users",
    "Draft the onboarding sequence for new admins",
    "Write the Black Friday offer for small shops",
    "Summarise the Q3 product update for partners",
    "Invite beta testers to try offline mode",
    "Write the release notes email for version 2.0",
    "Draft a referral programme announcement",
    "Write the welcome email for the Berlin office",
]
