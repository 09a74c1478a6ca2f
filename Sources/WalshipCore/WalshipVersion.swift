/// The version of walship itself, printed by `walship version` and recorded in object headers.
public enum WalshipVersion {
    public static let current = "0.1.0-dev"
}
