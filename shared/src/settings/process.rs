//! A binary's settings: the common sections every process reads ([`Settings`]) and the
//! binary's own, loaded by the one loader ([`Layers`]) and checked at start. Each binary
//! implements [`ProcessSettings`] for its type (the gateway's, a worker's, the beat's) and gets
//! `load` and `from_layers` from here.

use serde::de::DeserializeOwned;

use super::{Layers, Settings, SettingsError};

pub trait ProcessSettings: DeserializeOwned {
    /// The common sections, which [`ProcessSettings::from_layers`] reads and checks apart.
    fn common_mut(&mut self) -> &mut Settings;

    /// Checks what the types alone cannot, in the binary's own sections.
    fn validate(&self) -> Result<(), SettingsError>;

    /// Loads and checks the settings from the files and the environment (see [`Layers::load`]).
    fn load() -> Result<Self, SettingsError> {
        Self::from_layers(&Layers::load()?)
    }

    /// The common sections and the binary's own from `layers`, checked.
    fn from_layers(layers: &Layers) -> Result<Self, SettingsError> {
        let mut settings: Self = layers.sections()?;
        *settings.common_mut() = Settings::from_layers(layers)?;
        settings.validate()?;
        Ok(settings)
    }
}
