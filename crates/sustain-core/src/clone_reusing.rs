//! `Clone` written field by field so that `clone_from` reuses the fields' buffers
//! (MCMC copies a state every step); the derive's `clone_from` allocates anew.

/// `impl Clone for $ty` whose `clone` clones each field and whose `clone_from`
/// calls each field's `clone_from`.
macro_rules! clone_reusing_buffers {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        impl Clone for $ty {
            fn clone(&self) -> Self {
                Self {
                    $($field: self.$field.clone()),+
                }
            }
            fn clone_from(&mut self, source: &Self) {
                $(self.$field.clone_from(&source.$field);)+
            }
        }
    };
}
