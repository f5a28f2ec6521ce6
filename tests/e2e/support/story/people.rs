//! The people of the stories: who files, who approves, who provisions, and who has no part.

/// Files the stories' requests, for themself.
pub const REQUESTER: &str = "UREQUESTER";
/// The approver of the catalog's apps that have one.
pub const APPROVER: &str = "UAPPROVER";
/// An admin of the catalog's apps.
pub const ADMIN1: &str = "UADMIN1";
/// GitHub's second admin.
pub const ADMIN2: &str = "UADMIN2";
/// The admin channel of the apps that have one.
pub const ADMIN_CHANNEL: &str = "CADMINS";
/// Someone with no part in any request.
pub const OUTSIDER: &str = "UOUTSIDER";
