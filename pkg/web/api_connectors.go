package web

import (
	"net/http"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/flows"
)

// listConnectors lists the connector kinds this process knows, with their
// settings and delivery guarantees.
func (s *Server) listConnectors(w http.ResponseWriter, r *http.Request, _ string) {
	out := api.Page[api.Connector]{Items: []api.Connector{}}
	for _, c := range flows.Connectors() {
		ac := api.Connector{Kind: c.Kind, Description: c.Description, Delivery: c.Delivery}
		if c.Source != nil {
			ac.Source = &api.ConnectorSide{Settings: settingsOf(c.Source())}
		}
		if c.Sink != nil {
			ac.Sink = &api.ConnectorSide{Settings: settingsOf(c.Sink())}
		}
		out.Items = append(out.Items, ac)
	}
	writeJSON(w, http.StatusOK, out)
}

func settingsOf(cfg any) []api.ConnectorSetting {
	out := []api.ConnectorSetting{}
	for _, s := range flows.Schema(cfg) {
		out = append(out, api.ConnectorSetting{Name: s.Name, Type: s.Type, Required: s.Required, Help: s.Help})
	}
	return out
}
