//! One declaration for the engines' named event counters.

/// Declares a counter struct and its `(kebab-case name, value)` list from
/// one table, so a counter can never be added without being exported:
///
/// ```ignore
/// named_counters! {
///     /// Doc of the struct.
///     pub struct Counters {
///         /// Doc of the counter.
///         rx_query => "rx-query",
///     }
/// }
/// ```
#[macro_export]
macro_rules! named_counters {
    (
        $(#[$meta:meta])*
        pub struct $ty:ident {
            $($(#[doc = $doc:literal])+ $field:ident => $name:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $ty {
            $($(#[doc = $doc])+ pub $field: u64,)+
        }

        impl $ty {
            /// Every counter as `(kebab-case name, value)`, in declaration order.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$(($name, self.$field),)+]
            }

            /// Field names, for tests that keep names and fields in step.
            #[allow(dead_code)]
            pub(crate) fn field_names() -> Vec<&'static str> {
                vec![$(stringify!($field),)+]
            }

            /// Panics unless every exported name is its field's name in
            /// kebab case (one check, not a copy per engine's tests);
            /// returns the names.
            #[cfg(test)]
            #[allow(dead_code)]
            pub(crate) fn assert_names_are_kebab_fields() -> Vec<&'static str> {
                let names: Vec<&str> = Self::default().named().into_iter().map(|(n, _)| n).collect();
                let fields: Vec<String> =
                    Self::field_names().iter().map(|f| f.replace('_', "-")).collect();
                assert_eq!(names, fields);
                names
            }
        }
    };
}
